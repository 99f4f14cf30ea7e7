"""Event streams: every event as a Pinpoint event-stream record, shipped at least once to the sink an ARN maps to."""
