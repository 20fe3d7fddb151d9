"""Moonshot's error shape and the error types its API documents."""

from __future__ import annotations

from starlette.responses import JSONResponse

INVALID_AUTHENTICATION = "invalid_authentication_error"
INVALID_REQUEST = "invalid_request_error"
RATE_LIMIT_REACHED = "rate_limit_reached_error"
EXCEEDED_CURRENT_QUOTA = "exceeded_current_quota_error"
# Not in Moonshot's error table; the API answers unknown file ids with 404 and this type.
RESOURCE_NOT_FOUND = "resource_not_found_error"
SERVER_ERROR = "server_error"

# Wording close to what api.moonshot.cn sends, used when a fault gives no message of its own.
DEFAULT_MESSAGES = {
    INVALID_AUTHENTICATION: "Invalid Authentication",
    INVALID_REQUEST: "Invalid request",
    RATE_LIMIT_REACHED: (
        "Your account has reached the rate limit (concurrency or requests per minute); "
        "please wait about 3 seconds and try again"
    ),
    EXCEEDED_CURRENT_QUOTA: (
        "Your account has exceeded its current quota; please check your plan and billing details"
    ),
    RESOURCE_NOT_FOUND: "Not found",
    SERVER_ERROR: "The server had an error while processing your request",
}


class ApiError(Exception):
    """An error answered to the client in Moonshot's `ErrorResponse` shape."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.message = message or DEFAULT_MESSAGES.get(error_type, error_type)
        self.code = code
        self.headers = headers or {}
        super().__init__(self.message)


def error_body(error_type: str, message: str, code: str | None = None) -> dict:
    """Return the JSON body of Moonshot's `ErrorResponse`."""
    error: dict[str, str] = {"message": message, "type": error_type}
    if code is not None:
        error["code"] = code
    return {"error": error}


def error_response(error: ApiError) -> JSONResponse:
    """Render an `ApiError` as the response Moonshot would send."""
    return JSONResponse(
        error_body(error.error_type, error.message, error.code),
        status_code=error.status,
        headers=error.headers,
    )


def invalid_request(message: str) -> ApiError:
    """A 400 `invalid_request_error`, the API's answer to anything malformed."""
    return ApiError(400, INVALID_REQUEST, message)
