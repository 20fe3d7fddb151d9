"""Auth, models, balance, token estimation, unknown routes, and what gets logged."""

from __future__ import annotations

import logging

import pytest
import requests

from tests.emulator.conftest import API_KEY


def test_v1_routes_need_the_bearer_key(emu, api):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {API_KEY}"}):
        response = requests.get(emu.base_url + "/models", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json() == {
            "error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}
        }
    upload = requests.post(
        emu.base_url + "/files", files={"file": ("a.txt", b"x")}, data={"purpose": "file-extract"}
    )
    assert upload.status_code == 401
    assert api.get("/models").status_code == 200


def test_models_list_the_spec_models_with_context_and_reasoning(api):
    body = api.get("/models").json()
    assert body["object"] == "list"
    models = {model["id"]: model for model in body["data"]}
    for model_id in (
        "kimi-k2.6",
        "kimi-k2.5",
        "kimi-k2-turbo-preview",
        "kimi-k2-0905-preview",
        "kimi-k2-thinking",
        "kimi-k2-thinking-turbo",
        "moonshot-v1-8k",
        "moonshot-v1-32k",
        "moonshot-v1-128k",
        "moonshot-v1-auto",
    ):
        assert models[model_id]["object"] == "model"
    assert models["moonshot-v1-8k"]["context_length"] == 8192
    assert models["moonshot-v1-32k"]["context_length"] == 32768
    assert models["moonshot-v1-128k"]["context_length"] == 131072
    assert models["kimi-k2-turbo-preview"]["context_length"] == 262144
    assert models["kimi-k2-thinking"]["supports_reasoning"] is True
    assert models["moonshot-v1-8k"]["supports_reasoning"] is False


def test_balance_has_moonshots_shape(api):
    body = api.get("/users/me/balance").json()
    assert body["code"] == 0 and body["scode"] == "0x0" and body["status"] is True
    assert set(body["data"]) == {"available_balance", "voucher_balance", "cash_balance"}
    assert body["data"]["available_balance"] > 0


def test_token_estimate_counts_latin_and_cjk_and_matches_usage(api):
    def estimate(content: str) -> int:
        response = api.post(
            "/tokenizers/estimate-token-count",
            json={"model": "moonshot-v1-8k", "messages": [{"role": "user", "content": content}]},
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]["total_tokens"]

    base = estimate("a")
    assert estimate("a" * 401) - base == 100  # about four Latin characters a token
    assert estimate("月" * 101) - estimate("月") == 100  # one token per CJK character
    messages = [{"role": "user", "content": "How long is a day on the moon?"}]
    estimated = api.post(
        "/tokenizers/estimate-token-count", json={"model": "moonshot-v1-8k", "messages": messages}
    ).json()["data"]["total_tokens"]
    assert api.chat(messages=messages).json()["usage"]["prompt_tokens"] == estimated


def test_token_estimate_validates_like_chat(api):
    response = api.post("/tokenizers/estimate-token-count", json={"model": "moonshot-v1-8k", "messages": []})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("model", ["kimi-k2-thinking", "kimi-k2-thinking-turbo", "gpt-4"])
def test_token_estimate_takes_only_the_specs_model_list(api, model):
    # EstimateTokenRequest.model in seed 004 leaves out the thinking-only models.
    messages = [{"role": "user", "content": "hello"}]
    response = api.post("/tokenizers/estimate-token-count", json={"model": model, "messages": messages})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert model in response.json()["error"]["message"]
    assert api.chat(model="kimi-k2-thinking", messages=messages).status_code == 200  # chat takes them


def test_token_estimate_refuses_unknown_fields(api):
    body = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}
    response = api.post("/tokenizers/estimate-token-count", json=body)
    assert response.status_code == 400
    assert "max_tokens" in response.json()["error"]["message"]
    del body["max_tokens"]
    assert api.post("/tokenizers/estimate-token-count", json=body).status_code == 200


def test_unknown_routes_and_methods_answer_in_the_error_shape(api):
    missing = api.get("/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "resource_not_found_error"
    wrong_method = api.session.put(api.base_url + "/files", timeout=10)
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()


def test_the_api_key_is_never_logged(emu, api, caplog):
    caplog.set_level(logging.DEBUG)
    api.get("/models")
    requests.get(emu.base_url + "/models", headers={"Authorization": "Bearer not-the-key-x9"}, timeout=10)
    api.upload("a.txt", b"hello")
    api.chat(messages=[{"role": "user", "content": "hi"}])
    assert API_KEY not in caplog.text
    assert "not-the-key-x9" not in caplog.text
