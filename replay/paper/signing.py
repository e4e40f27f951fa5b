"""Who signed an exchange request, and whether its nonce may be used: the exchange's L1-action rules.

The action hash and the EIP-712 "phantom agent" are built exactly as Hyperliquid's SDK signs them
(``hyperliquid/utils/signing.py``): msgpack of the action as posted, the nonce, the vault flag and
``expiresAfter``; source ``"a"`` on mainnet, ``"b"`` elsewhere. The signer is recovered, never
taken from the request.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgpack
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

NONCES_KEPT = 100  # the exchange keeps each signer's 100 highest nonces
NONCE_PAST_MS = 2 * 86_400_000
NONCE_FUTURE_MS = 86_400_000

_DOMAIN = {
    "chainId": 1337,
    "name": "Exchange",
    "verifyingContract": "0x0000000000000000000000000000000000000000",
    "version": "1",
}
_TYPES = {
    "Agent": [{"name": "source", "type": "string"}, {"name": "connectionId", "type": "bytes32"}],
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
}


class SignatureError(ValueError):
    """The request is refused as a whole; the message is the exchange's sentence."""


def action_hash(action: Any, vault_address: str | None, nonce: int, expires_after: int | None) -> bytes:
    data = msgpack.packb(action)
    data += nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + bytes.fromhex(vault_address.removeprefix("0x"))
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


def typed_data(action: Any, vault_address: str | None, nonce: int, expires_after: int | None, *, mainnet: bool) -> dict[str, Any]:
    agent = {"source": "a" if mainnet else "b", "connectionId": action_hash(action, vault_address, nonce, expires_after)}
    return {"domain": _DOMAIN, "types": _TYPES, "primaryType": "Agent", "message": agent}


def sign_action(key: str | bytes, action: Any, nonce: int, *, vault_address: str | None = None, expires_after: int | None = None, mainnet: bool = False) -> dict[str, Any]:
    """A signature as the SDK sends it (``{"r", "s", "v"}``): for tests and in-process clients."""
    signed = Account.sign_message(encode_typed_data(full_message=typed_data(action, vault_address, nonce, expires_after, mainnet=mainnet)), key)
    return {"r": f"0x{signed.r:064x}", "s": f"0x{signed.s:064x}", "v": signed.v}


def recover_signer(request: dict[str, Any], *, mainnet: bool = False) -> str:
    """The lower-case address that signed ``request`` (``{"action", "nonce", "signature", ...}``)."""
    signature = request.get("signature")
    nonce = request.get("nonce")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce < 2**64:
        raise SignatureError("Invalid nonce: it must be an unsigned 64-bit integer (milliseconds since the epoch)")
    if not isinstance(signature, dict):
        raise SignatureError("Missing signature: sign the action as the SDK does ({r, s, v})")
    try:
        r, s, v = int(signature["r"], 16), int(signature["s"], 16), int(signature["v"])
        vault, expires = request.get("vaultAddress"), request.get("expiresAfter")
        message = encode_typed_data(full_message=typed_data(request["action"], vault, nonce, expires, mainnet=mainnet))
        return Account.recover_message(message, vrs=(v, r, s)).lower()
    except Exception as exc:  # noqa: BLE001 - eth_keys raises a zoo of types for a bad curve point
        raise SignatureError(f"Invalid signature: {type(exc).__name__}") from None


class NonceBook:
    """Each signer's highest nonces: a nonce must be new, above the smallest kept once 100 are kept,
    and within (now - 2 days, now + 1 day)."""

    def __init__(self) -> None:
        self._kept: dict[str, list[int]] = defaultdict(list)

    def use(self, signer: str, nonce: int, now_ms: int) -> None:
        if not now_ms - NONCE_PAST_MS < nonce < now_ms + NONCE_FUTURE_MS:
            raise SignatureError(f"Invalid nonce: {nonce} is not within 2 days before and 1 day after the current time {now_ms}")
        kept = self._kept[signer]
        if nonce in kept:
            raise SignatureError(f"Invalid nonce: {nonce} was already used by {signer}")
        if len(kept) >= NONCES_KEPT and nonce <= kept[0]:
            raise SignatureError(f"Invalid nonce: {nonce} is below the smallest of the {NONCES_KEPT} highest nonces used by {signer}")
        kept.append(nonce)
        kept.sort()
        if len(kept) > NONCES_KEPT:
            del kept[0]


__all__ = ["NonceBook", "SignatureError", "action_hash", "recover_signer", "sign_action", "typed_data"]
