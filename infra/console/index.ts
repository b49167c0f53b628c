export { ConsoleRequestError, startConsole } from './console-server.ts';
export type { ConsoleActions, ConsoleOptions, ConsoleServer } from './console-server.ts';
export { escapeHtml, html, SafeHtml } from './html.ts';
