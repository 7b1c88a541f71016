"""stopmo station: the children's stop-motion kiosk and its sync agent."""
