"""IoT Core's Device Shadow service (classic and named shadows), one model behind two interfaces.

- `model.py`: the pure rules (validation, merge with `null` deletes, metadata, delta, documents),
- `store.py`: durable shadows under `<data_dir>/shadow/`,
- `messages.py`: `OutboundMessage` and the hand-off with the MQTT broker,
- `service.py`: the component (`emulator.shadow`): iot-data REST handlers and `handle()` for
  PUBLISHes on the reserved `$aws/things/<thing>/shadow/...` request topics.
"""
