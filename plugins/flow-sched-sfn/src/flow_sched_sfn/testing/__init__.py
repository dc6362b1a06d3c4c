"""Test helpers of flow-sched-sfn: `validate_asl` checks a definition with npm's asl-validator."""

from flow_sched_sfn.testing.asl_validator import ASL_VALIDATOR_VERSION, AslValidator, AslInvalid, validate_asl

__all__ = ["ASL_VALIDATOR_VERSION", "AslInvalid", "AslValidator", "validate_asl"]
