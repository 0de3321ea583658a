using PeftLab.Cli;

return CliApp.Run(args);
