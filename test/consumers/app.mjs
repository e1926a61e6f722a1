// An ES module consumer: import is how it loads the package, createRequire() the other way.
import 'reflect-metadata';
import { createRequire } from 'node:module';
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';
import * as eventEmitter from '@nestjs/event-emitter';
import * as terminus from '@nestjs/terminus';
import * as pkg from 'nestjs-mtproto-sessions';
import * as health from 'nestjs-mtproto-sessions/terminus';
import check from './check.cjs';

const require = createRequire(import.meta.url);

await check({
  mode: 'ESM',
  pkg,
  other: require('nestjs-mtproto-sessions'),
  nestVersion: require('@nestjs/core/package.json').version,
  common,
  core,
  eventEmitter,
  terminus,
  health,
  resolve: require.resolve,
  loaded: () => Object.keys(require.cache),
});
