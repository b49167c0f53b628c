export { SeloStack } from './selo-stack.ts';
export type { SeloStackProps } from './selo-stack.ts';
