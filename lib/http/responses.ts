import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type AppError, ERROR_TITLES, toAppError } from '../errors.ts';

export type HttpResponse = APIGatewayProxyStructuredResultV2 & {
  statusCode: number;
  headers: Record<string, string>;
};

const BASE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
} as const;

/** A JSON answer with the contract's `x-trace-id` header. */
export function jsonResponse(statusCode: number, body: unknown, traceId: string): HttpResponse {
  return {
    statusCode,
    headers: { ...BASE_HEADERS, 'content-type': 'application/json', 'x-trace-id': traceId },
    body: JSON.stringify(body),
  };
}

/** An answer without a body (a CORS preflight's 204), with the contract's `x-trace-id` header. */
export function emptyResponse(statusCode: number, traceId: string): HttpResponse {
  return { statusCode, headers: { ...BASE_HEADERS, 'x-trace-id': traceId }, body: '' };
}

/** A non-JSON answer (SVG, HTML) with the contract's `x-trace-id` header. */
export function textResponse(
  statusCode: number,
  body: string,
  contentType: string,
  traceId: string,
): HttpResponse {
  return {
    statusCode,
    headers: { ...BASE_HEADERS, 'content-type': contentType, 'x-trace-id': traceId },
    body,
  };
}

/** The RFC 9457 body of an error: `{type,title,status,detail,code,traceId}` plus the upstream's code and message. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  traceId: string;
  upstreamCode?: string;
  upstreamMessage?: string;
}

function problemTypeUri(code: string): string {
  return `urn:koodrive-allocation:problem:${code.toLowerCase().replaceAll('_', '-')}`;
}

/** Maps any error to the contract's problem+json. Unexpected errors never show their message or stack. */
export function toProblem(error: unknown, traceId: string): Problem {
  const appError: AppError = toAppError(error);
  const problem: Problem = {
    type: problemTypeUri(appError.code),
    title: ERROR_TITLES[appError.code],
    status: appError.status,
    detail: appError.message,
    code: appError.code,
    traceId,
  };
  if (appError.upstreamCode !== undefined) problem.upstreamCode = appError.upstreamCode;
  if (appError.upstreamMessage !== undefined) problem.upstreamMessage = appError.upstreamMessage;
  return problem;
}

export function problemResponse(error: unknown, traceId: string): HttpResponse {
  const problem = toProblem(error, traceId);
  return {
    statusCode: problem.status,
    headers: { ...BASE_HEADERS, 'content-type': 'application/problem+json', 'x-trace-id': traceId },
    body: JSON.stringify(problem),
  };
}
