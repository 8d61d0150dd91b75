"""The life of an alarm after detection: ISA-18.2 states, what people and timers do to them."""
