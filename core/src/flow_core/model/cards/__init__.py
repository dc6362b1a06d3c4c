"""Cards: reports a step attaches to its task, rendered to one self-contained HTML file.

What users write (the components, ``current.card``) and how a card becomes HTML live here, in
the model layer: rendering needs nothing but the components and a few facts about the task.
Storing a card is the datastore's business (`flow_core.datastore.card_store`), and the
``@card`` decorator that ties the two together is a built-in (`flow_core.plugin.card_decorator`).
"""
