"""A loopback exchange emulator: real HTTP on 127.0.0.1 speaking enough of each venue's REST API
that the real SDKs work through NIJA's adapters. One module per venue."""
