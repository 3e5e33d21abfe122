"""CloudFormation for the emulator: the SAM transform, the resource types moto lacks, and the
stack life cycle (see deployer.py)."""

from emulator.cloudformation.deployer import CloudFormationDeployer

__all__ = ["CloudFormationDeployer"]
