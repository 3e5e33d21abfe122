"""IoT Core's data plane: an MQTT 3.1.1 + 5 broker over mutual TLS (`broker.Broker`, the
`emulator.broker` component), its wire format (`codec`), per-connection protocol
(`connection`), sessions (`session`), AWS's limits (`limits`) and the activity log
(`activity`, served at `/_emulator/activity`)."""
