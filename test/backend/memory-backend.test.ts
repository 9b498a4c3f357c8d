import { MemoryBackend } from '../../src/backend/memory-backend.js';
import { backendConformance } from './conformance.js';

backendConformance('memory', async () => ({ backend: new MemoryBackend() }));
