"""Integrations with ML libraries (autologging): ``mlcycle.autolog()`` enables them."""
