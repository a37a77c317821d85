"""eta311 package."""
