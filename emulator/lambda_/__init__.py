"""Lambda's data plane for the emulator: a function's real handler runs in a worker process.

- `runtime.LambdaRuntime` (`emulator.lambdas`): `invoke()`, worker pools, Lambda's answers.
- `worker.Worker`: one execution environment (`python -m awslambdaric <handler>`).
- `runtime_api.RuntimeApiServer`: the Runtime API that worker polls, on 127.0.0.1.
- `code`: the deployment package checked (sizes, entry paths) and extracted from moto's .zip.
- `names`: FunctionName and package checks before moto answers CreateFunction and friends.
- `isolation`: workers under a uid of their own (when root), swept at a timeout.
- `logs`: START/END/REPORT and the function's output, written to CloudWatch Logs.
- `api`: `Invoke` on the emulator's endpoint.
"""
