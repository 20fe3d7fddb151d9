"""A local server that speaks Moonshot AI's HTTP API, for running docqa without a key.

It serves the `/v1` routes docqa's client uses (files with real local text extraction,
chat completions with honest offline answers, models, balance, token estimation) and a
`/_emulator/` control API through which tests inject faults and tune delays.

Start it with `python -m docqa.emulator` or, in tests, `docqa.emulator.testing.run_emulator`.
It imports no Django: it is an outside service that happens to live in this repository.
"""
