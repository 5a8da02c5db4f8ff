"""vcr package."""
