Fastgw.main()
