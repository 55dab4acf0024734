import ts from 'typescript'

/**
 * Type-checks `files` (absolute path → source) in memory against the
 * repository's tsconfig.json, as files of the repository at `root`: the
 * diagnostics of those files only, as `path:line: message` (path relative to
 * `root`).
 */
export function compileInMemory(root: string, files: ReadonlyMap<string, string>): string[] {
  const config = ts.readConfigFile(`${root}tsconfig.json`, ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  const host = ts.createCompilerHost(options)
  const { getSourceFile, fileExists, readFile } = host
  host.fileExists = (name) => files.has(name) || fileExists(name)
  host.readFile = (name) => files.get(name) ?? readFile(name)
  host.getSourceFile = (name, version, ...rest) => {
    const text = files.get(name)
    return text === undefined ? getSourceFile(name, version, ...rest) : ts.createSourceFile(name, text, version)
  }
  const program = ts.createProgram([...files.keys()], { ...options, noEmit: true }, host)
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file && files.has(d.file.fileName))
    .map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0)
      return `${d.file!.fileName.slice(root.length)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
    })
}
