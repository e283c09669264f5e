/** Tests are TypeScript, run through ts-jest; slow integration suites raise their own timeouts. */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testTimeout: 120000,
  maxWorkers: 1,
  setupFiles: ['<rootDir>/tests/helpers/setup-env.ts'],
};
