"""download: reading and verifying FER2013 from any source."""
