"""leadscore: open-source lead scoring with readable models and explained points."""
