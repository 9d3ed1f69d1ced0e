"""`audiolm serve`: a REST API and a web page over the generation pipeline (no model code here).

    settings.py   the server's settings and their bounds (audiolm/limits.py)
    forms.py      the endpoints' form fields: parsers (the CLI's sentences), OpenAPI schema
    jobs.py       the bounded worker pool: a queue with a capacity, time limits, progress from the models' hooks
    app.py        create_app(models, settings): the FastAPI app, its endpoints and the page in static/
"""
