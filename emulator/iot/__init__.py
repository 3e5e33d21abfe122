"""IoT Core's control-plane extras and data-plane identity (the `emulator.iot` component).

- `ca.py`: the local root CA, device certificates it signs, the broker's server certificate;
- `api.py`: the IoT API requests answered or observed in front of moto (gateway handlers);
- `policy.py`: IoT policy documents compiled and evaluated (pure);
- `core.py`: `IotCore` (authenticate, authorize, server_ssl_context, listeners);
- `messages.py`: the broker -> rules engine hand-off.
"""
