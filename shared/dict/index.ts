export { buildDictBody, parseDictBody, parseDictProblem, buildDictProblem, DictBodyError, DICT_OPERATIONS } from './dict-body.ts';
export type { DictBuildOptions, DictValue, DictObject, DictOperation, DictOperationSpec, DictProblem } from './dict-body.ts';
