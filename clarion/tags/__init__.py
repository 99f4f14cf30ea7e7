"""Tags on projects, campaigns, segments, journeys and templates, addressed by ARN."""
