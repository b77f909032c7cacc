"""GitHub's error answers as one exception that knows its JSON response."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """An error answer: status, message, optional `errors` list and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        body["documentation_url"] = DOCS
        body["status"] = str(self.status)
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def invalid(*errors: Any, message: str = "Validation Failed") -> ApiError:
    return ApiError(422, message, errors=list(errors))


def missing_field(resource: str, field: str) -> ApiError:
    return invalid({"resource": resource, "code": "missing_field", "field": field})
