"""The people side of a policy: approvals, exemptions, inventory, acknowledgements, training, cases, API tokens.

Each module holds its workflow over the store; the CLI, the REST API and the console call the same functions.
"""
