"""What the core hands people and other systems: CloudEvents (signed), adequacy reports
and their plain-word explanation."""
