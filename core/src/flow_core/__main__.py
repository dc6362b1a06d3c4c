from flow_core.cli.main import main

main()
