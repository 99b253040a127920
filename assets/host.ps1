# pcfail PowerShell host, protocol 1 (docs/powershell-host-protocol.md in the pcfail sources).
#
# pcfail starts this script once per run as -EncodedCommand (base64 of its UTF-16LE text: no file on
# disk, so no execution policy applies to it) and sends one JSON request per line on stdin. Each
# request holds exactly one PowerShell statement; the answer is one line on stdout starting with
# 'PCFAIL-RESULT '. Reading line by line from standard input avoids the REPL rules of '-Command -'
# (blank lines after multi-line statements, $ErrorActionPreference not carried across statements).

$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
# UTF-8 on the standard streams themselves, not through [Console]::InputEncoding/OutputEncoding: a
# process without a console (started by a service or a scheduled task) has no console encoding to
# set, and setting it fails ("The handle is invalid."), which would end the script before READY.
$utf8 = New-Object System.Text.UTF8Encoding $false
$stdin = New-Object System.IO.StreamReader -ArgumentList ([Console]::OpenStandardInput()), $utf8
$stdout = New-Object System.IO.StreamWriter -ArgumentList ([Console]::OpenStandardOutput()), $utf8

# Objects become JSON-friendly values: enums by name (ConvertTo-Json in 5.1 would write numbers),
# CommandInfo as its name and parameter names, other objects as their properties, three levels deep.
function ConvertTo-PcfailValue {
    param($Value, [int]$Depth)
    if ($null -eq $Value) { return $null }
    # Objects from a remoting session arrive deserialized: an enum as its number (its name is in
    # ToString), a CommandInfo as a property bag.
    $names = $Value.PSObject.TypeNames
    if ($names.Count -gt 0 -and $names[0] -like 'Deserialized.*') {
        if ($names -contains 'Deserialized.System.Enum') { return $Value.ToString() }
        if ($names -contains 'Deserialized.System.Management.Automation.CommandInfo') {
            return [ordered]@{
                Name        = [string]$Value.Name
                CommandType = [string]$Value.CommandType
                Source      = [string]$Value.Source
                Parameters  = @($Value.Parameters.Keys)
            }
        }
    }
    if ($Value -is [enum]) { return $Value.ToString() }
    if ($Value -is [string] -or $Value -is [bool] -or $Value -is [char]) { return [string]$Value }
    if ($Value.GetType().IsPrimitive -or $Value -is [decimal]) { return $Value }
    if ($Value -is [System.Management.Automation.CommandInfo]) {
        return [ordered]@{
            Name        = $Value.Name
            CommandType = $Value.CommandType.ToString()
            Source      = [string]$Value.Source
            Parameters  = @($Value.Parameters.Keys)
        }
    }
    if ($Depth -ge 3) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $map = [ordered]@{}
        foreach ($key in $Value.Keys) { $map[[string]$key] = ConvertTo-PcfailValue $Value[$key] ($Depth + 1) }
        return $map
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-PcfailValue $item ($Depth + 1))) }
        return , $list
    }
    $map = [ordered]@{}
    foreach ($property in $Value.PSObject.Properties) {
        try { $map[$property.Name] = ConvertTo-PcfailValue $property.Value ($Depth + 1) }
        catch { $map[$property.Name] = $null }
    }
    return $map
}

function Write-PcfailLine {
    param([string]$Prefix, $Object)
    $json = ConvertTo-Json -InputObject $Object -Depth 8 -Compress
    $stdout.WriteLine($Prefix + $json)
    $stdout.Flush()
}

function New-PcfailError {
    param([string]$Type, [string]$Message)
    return [ordered]@{
        type                     = $Type
        message                  = $Message
        fully_qualified_error_id = $Type
        category                 = 'InvalidArgument'
        target                   = $null
    }
}

# Refuses anything but one statement holding one command: a request must never run more than pcfail
# showed the operator in its plan.
function Test-PcfailSingleCommand {
    param([string]$Command)
    $tokens = $null
    $parseErrors = $null
    $ast = [System.Management.Automation.Language.Parser]::ParseInput($Command, [ref]$tokens, [ref]$parseErrors)
    if ($parseErrors.Count -gt 0) {
        return New-PcfailError 'pcfail.ParseError' $parseErrors[0].Message
    }
    $statements = @($ast.EndBlock.Statements)
    $single = ($null -eq $ast.BeginBlock) -and ($null -eq $ast.ProcessBlock) -and ($statements.Count -eq 1)
    if ($single) {
        $single = ($statements[0] -is [System.Management.Automation.Language.PipelineAst]) -and
            (@($statements[0].PipelineElements).Count -eq 1)
    }
    if (-not $single) {
        return New-PcfailError 'pcfail.MultipleStatements' 'The request must hold exactly one command.'
    }
    return $null
}

# A 'remote' request opens a PowerShell remoting session; every later command runs in it.
$PcfailSession = $null

function Open-PcfailSession {
    param($Remote)
    if ($null -ne $script:PcfailSession) { throw 'A remoting session is already open.' }
    $options = @{ ComputerName = [string]$Remote.computer; Authentication = [string]$Remote.authentication; ErrorAction = 'Stop' }
    if ($Remote.use_ssl) { $options.UseSSL = $true }
    if ($null -ne $Remote.port) { $options.Port = [int]$Remote.port }
    if ($null -ne $Remote.configuration_name) { $options.ConfigurationName = [string]$Remote.configuration_name }
    if ($null -ne $Remote.user) {
        # The password comes from the variable pcfail left in this process's environment (never a
        # request or a command line), which is then cleared.
        $name = [string]$Remote.password_env
        $secret = [Environment]::GetEnvironmentVariable($name)
        if ([string]::IsNullOrEmpty($secret)) { throw "The environment variable $name, which holds the password of $($Remote.user), is not set." }
        $password = ConvertTo-SecureString -String $secret -AsPlainText -Force
        $secret = $null
        [Environment]::SetEnvironmentVariable($name, $null)
        $options.Credential = New-Object System.Management.Automation.PSCredential -ArgumentList ([string]$Remote.user), $password
    }
    $session = New-PSSession @options
    # The remote session's own preferences, as this host sets its own.
    Invoke-Command -Session $session -ErrorAction Stop -ScriptBlock {
        $ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; $ConfirmPreference = 'None'
    }
    $script:PcfailSession = $session
    return [ordered]@{ ComputerName = $session.ComputerName; ConfigurationName = $session.ConfigurationName; State = $session.State.ToString() }
}

$ready = [ordered]@{ protocol = 1; host = 'powershell'; version = $PSVersionTable.PSVersion.ToString() }
Write-PcfailLine 'PCFAIL-READY ' $ready

while ($true) {
    $line = $stdin.ReadLine()
    if ($null -eq $line) { break }
    if ($line.Trim().Length -eq 0) { continue }
    $output = New-Object System.Collections.ArrayList
    $warnings = New-Object System.Collections.ArrayList
    $verbose = New-Object System.Collections.ArrayList
    $result = [ordered]@{ id = $null; ok = $false; output = $output; warnings = $warnings; verbose = $verbose }
    try {
        $request = ConvertFrom-Json -InputObject $line
        $result.id = $request.id
        $refusal = $null
        if ($null -ne $request.remote) {
            [void]$output.Add((Open-PcfailSession $request.remote))
            $result.ok = $true
        }
        else { $refusal = Test-PcfailSingleCommand ([string]$request.command) }
        if ($null -ne $refusal) {
            $result.error = $refusal
        }
        elseif (-not $result.ok) {
            $block = [scriptblock]::Create([string]$request.command)
            # Warning (3) and verbose (4) records are merged into the output so they can be kept apart
            # from the objects the command wrote. In a remoting session the block is sent as text;
            # it refers to no variable of this host (all its values are literals).
            if ($null -eq $PcfailSession) { $items = @(& $block 3>&1 4>&1) }
            else { $items = @(Invoke-Command -Session $PcfailSession -ScriptBlock $block -ErrorAction Stop 3>&1 4>&1) }
            foreach ($item in $items) {
                if ($item -is [System.Management.Automation.WarningRecord]) { [void]$warnings.Add($item.Message) }
                elseif ($item -is [System.Management.Automation.VerboseRecord]) { [void]$verbose.Add($item.Message) }
                else { [void]$output.Add((ConvertTo-PcfailValue $item 0)) }
            }
            $result.ok = $true
        }
    }
    catch {
        $record = $_
        $target = $null
        if ($null -ne $record.TargetObject) { $target = [string]$record.TargetObject }
        # An error from a remoting session is wrapped in a RemoteException; report the original type.
        $type = $record.Exception.GetType().FullName
        $remote = $record.Exception -as [System.Management.Automation.RemoteException]
        if ($null -ne $remote -and $null -ne $remote.SerializedRemoteException) {
            $type = $remote.SerializedRemoteException.PSObject.TypeNames[0] -replace '^Deserialized\.', ''
        }
        $result.ok = $false
        $result.error = [ordered]@{
            type                     = $type
            message                  = $record.Exception.Message
            fully_qualified_error_id = $record.FullyQualifiedErrorId
            category                 = $record.CategoryInfo.Category.ToString()
            target                   = $target
        }
    }
    Write-PcfailLine 'PCFAIL-RESULT ' $result
}
exit 0
