"""stopmo processor: turns movie packages into published movies and plays them on the big screen."""
