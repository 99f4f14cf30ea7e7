"""Pinpoint's message-template language: a Handlebars.js 4.7-compatible compiler plus Pinpoint's helper set."""
