"""stopmo website: find, watch and download the festival's movies."""
