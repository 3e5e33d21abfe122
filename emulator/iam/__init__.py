"""IAM for the emulator: AWS's policy evaluation logic (`evaluator`), the role-based
authorizer services use before acting on a user's behalf (`authorizer`), and the policy
simulator operations (`api`)."""

from emulator.iam.authorizer import IamAuthorizer
from emulator.iam.evaluator import Decision, Policy, Principal, Request, evaluate

__all__ = ["Decision", "IamAuthorizer", "Policy", "Principal", "Request", "evaluate"]
