export * from '../../shared/bcb-client/multipart.ts';
