import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';

/**
 * A plain HTTP server on the loopback interface standing in for an SQS endpoint that misbehaves
 * in one way, for the faults fauxqs cannot produce: it counts the requests it gets.
 */
export interface FaultyEndpoint {
  /** The endpoint, `http://127.0.0.1:<port>`, for an SQS client or the handler's `sqsEndpoint`. */
  endpoint: string;
  /** A well-formed queue URL on this endpoint. */
  queueUrl: string;
  /** Requests received so far (headers read). */
  requests(): number;
  close(): Promise<void>;
}

type Respond = (request: IncomingMessage, response: ServerResponse) => void;

async function startEndpoint(respond: Respond): Promise<FaultyEndpoint> {
  let requests = 0;
  const server = createServer((request, response) => {
    requests += 1;
    // Read the body so the client's write completes, then answer (or not).
    request.resume();
    request.on('end', () => respond(request, response));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('test fixture: the fault server has no port');
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    queueUrl: `${endpoint}/000000000000/orca-internal-report-queue.fifo`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Accepts every connection and reads every request, and never answers. */
export function startSilentEndpoint(): Promise<FaultyEndpoint> {
  return startEndpoint(() => undefined);
}

/**
 * Answers every request with an SQS error in the wire format of the JSON protocol, as SQS
 * does: the status, `__type` and message in the body, and the query-protocol code in the
 * `x-amzn-query-error` header.
 */
export function startErrorEndpoint(error: { status: number; type: string; queryCode?: string; message: string }): Promise<FaultyEndpoint> {
  return startEndpoint((_request, response) => {
    const fault = error.status >= 500 ? 'Receiver' : 'Sender';
    response.writeHead(error.status, {
      'content-type': 'application/x-amz-json-1.0',
      'x-amzn-requestid': '00000000-0000-0000-0000-000000000000',
      ...(error.queryCode ? { 'x-amzn-query-error': `${error.queryCode};${fault}` } : {}),
    });
    response.end(JSON.stringify({ __type: error.type, message: error.message }));
  });
}

/** SQS's answer when it fails on its side: 500 InternalError. */
export const INTERNAL_ERROR = {
  status: 500,
  type: 'com.amazonaws.sqs#InternalError',
  queryCode: 'InternalError',
  message: 'We encountered an internal error. Please try again.',
};
