"""Example call flows.  ``examples.ivr`` is the demo the app answers with while VOICE_FLOWS
is unset; copy it into a module of your own to start yours (see the README)."""
