"""Projects (Pinpoint applications): the container every endpoint, event, segment and campaign lives in."""
