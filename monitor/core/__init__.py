"""The core: events, state, rules and the engine, without Kafka."""

from monitor.core.compiled import refuse_stale

refuse_stale()
