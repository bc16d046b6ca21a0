"""One router per resource of docs/architecture.md."""
