"""One router per resource of DESIGN section 8."""
