import { pino } from 'pino';

/** The slice of a pino logger the agent uses; the service passes its fastify (pino) logger. */
export interface AgentLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export function defaultLogger(): AgentLogger {
  return pino({ name: 'hotdeploy-agent', level: process.env.HOTDEPLOY_LOG_LEVEL ?? 'info' });
}
