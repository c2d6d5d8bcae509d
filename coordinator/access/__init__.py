"""Who may do what with a case: roles, relations and the permission table (pure)."""
