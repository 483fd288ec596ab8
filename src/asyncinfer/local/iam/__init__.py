"""IAM as AWS enforces it, for the local stack: request mapping, policy evaluation, identities, decisions."""
