#!/usr/bin/env node
/** Batch job for store.dim_vendors (see the catalog). Usage: node dist/jobs/dim_vendors.js --help */
import { main, runJobCli } from './lib/cli';

main(() => runJobCli('store.dim_vendors'));
