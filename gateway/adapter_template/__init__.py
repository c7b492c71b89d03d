"""The files ``cpas-gateway adapter new`` writes, as :class:`string.Template` text."""
