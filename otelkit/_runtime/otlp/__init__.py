"""OTLP on the wire: protobuf field writing (protowire), span/log encoding (encode), fast exporters (fast)."""
