/**
 * What an echo of our own request could carry in KooDrive's text (a gateway that repeats the request
 * in its error, or a field that holds it): an app-auth Authorization value (to the end of the line or
 * quote), a `Signature=` / `"Signature":` parameter, and any run of 64 hex digits (a signature, or any
 * other SHA-256 in hex, which is never worth showing to an operator). Redact before cutting text
 * short, so that a cut never leaves part of a signature unrecognized.
 */
export const REDACTED = '[redacted]';

const AUTHORIZATION_VALUE = /HMAC-SHA256[^\r\n"'<>]*/gi;
const SIGNATURE_PARAMETER = /\bSignature\b["']?\s*[=:]\s*["']?[^\s,;"'&<>]*/gi;
const HEX_RUN = /[0-9a-f]{64,}/gi;

/** `text` with every request echo above replaced by `[redacted]`. */
export function redactRequestEchoes(text: string): string {
  return text
    .replace(AUTHORIZATION_VALUE, REDACTED)
    .replace(SIGNATURE_PARAMETER, REDACTED)
    .replace(HEX_RUN, REDACTED);
}
