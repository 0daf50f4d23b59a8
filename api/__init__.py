"""The REST API (`/api/v1/`), its tokens and its webhooks, as one plugin.

flask-smorest makes the OpenAPI 3.1 document from the marshmallow schemas that validate the
requests (see the README for why this library). The views call the kernel's services with an
Actor of the integration, so the rules, the errors and the audit are the web's.
"""

from __future__ import annotations

from flask import Flask


def _dispose(batch):
    from api import disposal

    disposal.dispose(batch)


def _holds():
    from api import disposal

    return disposal.HOLDS


def register(app: Flask) -> None:
    from api import admin, docs, models, services, webhooks  # noqa: F401 (models: tables)
    from api.settings import ApiSettings
    from consult import plugins, signals
    from consult.models import Role

    plugins.install(
        app,
        plugins.Plugin(
            name="api",
            disposers=(plugins.Disposer("api", _dispose, _holds()),),
            accessors=services.accessors(),
            blueprints=(admin.bp, docs.bp),
            nav_links=(plugins.NavLink("api_admin.index", "API連携", (Role.ADMIN,), 95),),
            worker_tasks=(plugins.WorkerTask("api.webhooks", webhooks.run_once, lane="webhooks"),),
            queues=(webhooks.QUEUE,),
            receivers=(
                (signals.ticket_created, webhooks.on_ticket_created),
                (signals.ticket_status_changed, webhooks.on_status_changed),
                (signals.ticket_closed, webhooks.on_ticket_closed),
                (signals.handoff_changed, webhooks.on_handoff_changed),
            ),
            settings=ApiSettings,
            setup=_setup,
        ),
    )


def _setup(app: Flask) -> None:
    """One flask-smorest Api per app: the document, the JSON route, the API's blueprint."""
    import threading

    from flask_smorest import Api

    from api import problems, schemas, views
    from api.settings import ApiSettings
    from consult import web
    from consult.extensions import csrf
    from consult.services import ratelimit
    from consult.settings import section

    ratelimit.parse(section(ApiSettings, app).rate_limit)  # refuse a bad setting at start

    class MadoguchiApi(Api):
        """Errors are ours (problem details, under the API's blueprint only): the Api must not
        turn the whole app's HTML error pages into JSON.

        The OpenAPI document is written when it is first read (the JSON, the description page),
        not when the app is built: resolving every schema is half of building an app, paid by
        each process (a command, a worker, each test) though few ever serve the document. The
        routes themselves are registered at once.
        """

        ERROR_SCHEMA = schemas.ProblemSchema
        DEFAULT_RESPONSE_CONTENT_TYPE = "application/json"

        def __init__(self, *args, **kwargs):
            self._written = None
            self._to_write = []
            self._writing = threading.Lock()
            self._writer = None  # the thread writing it: the steps read the document themselves
            super().__init__(*args, **kwargs)

        @property
        def spec(self):
            # Another thread waits until the document is whole (two first requests at once).
            if self._to_write and self._writer != threading.get_ident():
                with self._writing:
                    if self._to_write:
                        self._writer = threading.get_ident()
                        try:
                            for step in self._to_write:
                                step()
                        finally:
                            self._to_write, self._writer = [], None
            return self._written

        @spec.setter
        def spec(self, value):
            self._written = value

        def document(self, step) -> None:
            """Run `step` (which writes into the document) when the document is first read."""
            self._to_write.append(step)

        def _init_spec(self, **kwargs):
            self.document(lambda: Api._init_spec(self, **kwargs))

        def register_blueprint(self, blp, *, parameters=None, **options):
            name = options.get("name", blp.name)
            self._app.extensions["flask-smorest"]["blp_name_to_api"][name] = self
            self._app.register_blueprint(blp, **options)

            def write():
                blp.register_views_in_doc(
                    self, self._app, self.spec, name=name, parameters=parameters
                )
                self.spec.tag({"name": name, "description": blp.description})

            self.document(write)

        def _register_error_handlers(self):
            return None

        def _register_responses(self):
            import http

            for status in http.HTTPStatus:
                if status >= 400:
                    self.spec.components.response(
                        status.name,
                        {
                            "description": problems.STATUS_TEXT.get(status, ("", status.phrase))[1],
                            "content": {problems.MEDIA_TYPE: {"schema": schemas.ProblemSchema}},
                        },
                        lazy=True,
                    )
            self.spec.components.response(
                "DEFAULT_ERROR",
                {
                    "description": "エラー（RFC 9457 problem details）",
                    "content": {problems.MEDIA_TYPE: {"schema": schemas.ProblemSchema}},
                },
                lazy=True,
            )

    app.config.update(
        API_TITLE="madoguchi API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "市民相談センターの相談管理システム madoguchi の REST API。"
                "人が読む説明は /api/v1/docs。"
            },
            "servers": [{"url": "/"}],
        },
    )
    api = MadoguchiApi(app)
    api.document(
        lambda: api.spec.components.security_scheme(
            "bearerAuth", {"type": "http", "scheme": "bearer", "description": "mdg_… のトークン"}
        )
    )
    api.register_blueprint(views.bp)
    app.extensions["madoguchi_api"] = api
    _answer_unrouted_with_problems(app)
    csrf.exempt(views.bp)  # a bearer token, never a cookie: nothing for CSRF to protect
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.startswith(("api_v1.", "api-docs.", "api_docs.")):
            # The token (or nothing: the FAQ, the description) is the check, not a session.
            app.view_functions[endpoint] = web.public(_plain(view))


def _plain(view):
    """A function around a view (flask-smorest's document view is a bound method)."""
    from functools import wraps

    @wraps(view)
    def call(*args, **kwargs):
        return view(*args, **kwargs)

    return call


def _answer_unrouted_with_problems(app: Flask) -> None:
    """A path under /api/ that matches no route (404) or no method (405) is answered as a
    problem too: no blueprint handles it, so the app's HTML page would."""
    from flask import request
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    from api import problems

    for error in (NotFound, MethodNotAllowed):
        page = app.error_handler_spec[None][error.code].get(error)

        def handler(exc, page=page):
            if request.path.startswith("/api/") and request.blueprint is None:
                code, title = problems.STATUS_TEXT[exc.code]
                headers = dict(exc.get_headers()) if exc.code == 405 else {}
                headers.pop("Content-Type", None)
                return problems.response(exc.code, code, title, headers=headers)
            return page(exc) if page is not None else exc

        app.register_error_handler(error.code, handler)
